"""The bus: everything that crosses Redis.

In: typed events and call messages. `redis_bus` puts them on the wire (pub/sub channels, each
call's stored state, the post-call record) and reads them back typed; `wallboard` turns the
stored state of every live call into the supervisors' tiles; `jobs`, `remote` and `worker` hand
model passes from gateway processes to worker processes over Redis Streams; `client` connects
(retries, TLS, masked URLs) and `acl` writes the least-privilege Redis user of each role.
Out: Redis keys and channels (the layout is in `redis_bus`), and model results back to a gateway.
"""
