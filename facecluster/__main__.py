from facecluster.cli import main

main()
