"""The router: the client-facing API in front of either deployment. It knows nothing of torch."""
