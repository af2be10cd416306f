"""Discrete-event simulation of many live migrations sharing NICs and WAN links."""
