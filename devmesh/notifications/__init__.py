"""Notifications out: tenants subscribe URLs to event types and get signed webhooks."""
