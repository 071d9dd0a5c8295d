# Imports a package that does not exist.
import torii_package_that_does_not_exist  # noqa: F401


class TritonPythonModel:
    def execute(self, requests):
        return []
