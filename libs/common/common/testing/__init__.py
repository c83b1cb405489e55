"""Test support shared by every service's tests: real PostgreSQL and RabbitMQ, found or started."""
