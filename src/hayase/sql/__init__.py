"""hayase.sql"""
