from booth import create_app

app = create_app()
