"""Operations on a session, one module per resource: they lock, apply the rules, audit and
add outbox events, and never commit (the route or the consumer commits once)."""
