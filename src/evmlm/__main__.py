from evmlm.cli import main

main()
