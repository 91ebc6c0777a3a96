import AirlockCommands

AirlockCommand.main(CommandLine.arguments)
