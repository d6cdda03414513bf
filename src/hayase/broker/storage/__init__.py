"""hayase.broker.storage"""
