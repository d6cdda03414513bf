"""hayase.broker.coordinator"""
