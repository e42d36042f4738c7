# The Python echo function of `ignis bench`: returns the event unchanged.
def handler(event, context):
    return event
