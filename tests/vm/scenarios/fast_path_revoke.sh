# vm: --cpus 4 --numa
# The fast path under revocation: the driver revokes a share of its ring
# entries while idle CPUs claim them; nothing is lost, nothing runs twice.
ghost_fast_path revoke
