"""Render results (JSON report, markdown job summary, step outputs, annotations) and publish them."""
