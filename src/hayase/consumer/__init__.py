"""hayase.consumer"""
