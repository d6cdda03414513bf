"""hayase.broker"""
