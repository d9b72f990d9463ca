"""Demo app of talkjs-components: ``talkjs-components demo``."""
