from graphroute.cli import main

main()
