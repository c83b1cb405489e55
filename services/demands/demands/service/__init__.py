"""Operations on a session: lock, apply the domain, audit, notify. Never commits (the route
or the consumer commits once). One module per resource."""
