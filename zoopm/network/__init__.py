"""Network: HTTP downloads (the only requests user), the GitHub API client, the fetcher."""
