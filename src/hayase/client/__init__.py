"""hayase.client"""
