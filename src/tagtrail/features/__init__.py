"""What tagtrail does besides deploying: retention, init, insights, the build side (build, ci)."""
