# Defines the wrong class name.
class TritonModel:
    def execute(self, requests):
        return []
