from hayase.cli.main import main

main()
