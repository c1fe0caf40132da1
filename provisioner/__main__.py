from provisioner.cli.main import run

run()
