"""demands: enterprise demands (需求) and providers' responses (我要对接), messages to the
platform (我要留言), the portal's notices and policy documents, and every user's
notifications."""
