"""Security: who may connect and how (OCPP 1.6 Security Whitepaper profiles 1-3),
the site's certificate authority, secrets kept hashed, and limits on hostile input."""
