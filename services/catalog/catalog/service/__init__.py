"""Operations on a session: lock, apply the domain, audit, add outbox events; never commits."""
