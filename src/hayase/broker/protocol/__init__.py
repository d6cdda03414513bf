"""hayase.broker.protocol"""
