"""Operations on a session: lock, apply the domain, journal, audit, add outbox events. Never
commits (the route, the handler or the timer worker commits once)."""
