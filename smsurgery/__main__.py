from smsurgery.cli.app import main

main()
