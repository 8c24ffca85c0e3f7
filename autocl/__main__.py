from autocl.cli import main

main()
