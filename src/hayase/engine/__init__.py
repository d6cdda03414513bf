"""hayase.engine"""
