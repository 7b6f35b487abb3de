from wmprune.cli import main

main()
