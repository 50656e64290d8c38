"""A node's network paths, apart from the video: the path watcher that keeps MPTCP's
endpoints in step with working paths (`pathwatch`), the switcher that takes providers down
on schedule (`outage`), and the testbed's link emulation (`linkemu`)."""
