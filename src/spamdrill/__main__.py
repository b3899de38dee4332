from spamdrill.cli import main

main()
