"""hayase.formats"""
