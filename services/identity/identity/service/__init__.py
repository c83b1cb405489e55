"""Operations on a session, one module per resource: they lock, apply the rules, audit and
add outbox events, and never commit (the route or handler commits once). A helper whose
effect must stand even when the request then fails says so in its name (``..._and_commit``)."""
