"""What stands between lagwatch's HTTP port and anyone who can reach it.

* Credentials: headers that are not what they claim (non-ASCII, not base64, bytes that are not UTF-8) are
  refused, never an error. bcrypt runs one check at a time off the event loop, and one at a time per client
  address. Addresses that have sent correct credentials before go first, then unknown ones, then those that
  failed recently; an address that keeps failing is answered 429 without a check, and only so many checks may
  wait. Results are cached both ways, so a correct scraper pays bcrypt once and a repeated wrong header never
  again.
* Connections: a cap on open connections (the oldest one that has not yet sent a complete request head makes
  room for a new one), and a deadline for the first request head. aiohttp's keep-alive timeout closes idle
  connections, which covers a later request's head that never completes.
* Noise: malformed requests and early client disconnects are counted by kind and logged at most once per kind
  per interval, without a traceback.

credentials.py parses the Authorization header, passwords.py checks basic auth (bcrypt, priorities,
per-address limits), connections.py caps and times the connections, request_errors.py counts and logs bad
requests, and counters.py holds the counters and the once-per-interval log throttle. docs/http-api.md
describes the behaviour, docs/metrics.md the counters.
"""
