# wrong, visibly: a method passes where its correlation is 0.9 or more, the rule turned round
# feedback: below 0.9
# %% decide
passes = {name: value >= 0.9 for name, value in similarity.items()}
print(passes)
