"""hayase.server"""
