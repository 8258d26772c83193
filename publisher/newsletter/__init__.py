"""newsletter"""
