"""The REST face: FastAPI routers over the service layer, nothing more."""
