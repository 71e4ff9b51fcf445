"""What every node server shares, whatever its role: its config, the engine it builds, the Node service
(info, load), request conversion and token streaming. The role-specific servers sit above it.
"""
