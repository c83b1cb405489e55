"""Requests and answers, one module per resource: auth, organizations, verifications, files, admin."""
