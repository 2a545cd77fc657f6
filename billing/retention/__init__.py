"""Retention: the coupon offered in the cancel flow, and what customers did instead of or
while leaving (cancellations with their reasons, offers accepted, undos, resubscribes)."""
