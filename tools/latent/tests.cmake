# End-to-end tests of the latent program (included by CMakeLists.txt; cli_check is defined there).

# Old Faithful: the chosen model of R mclust (EEE, 3 components), as model_selection_test finds
# with the same options. reg_covar 1e-3: see docs/cli.md on data recorded in whole minutes.
cli_check(NAME gmm_fit_faithful STATUS 0
  STDOUT "Chosen by BIC: K = 3, tied covariance"
  ARGS gmm fit ${data}/faithful.csv --components 1:5 --reg-covar 1e-3 --restarts 10 --seed 1 --quiet)
cli_check(NAME gmm_fit_table STATUS 0
  STDOUT "BIC = -2 log L \\+ p log n \\(lower is better[^\n]*\n +K +full +diagonal +spherical +tied\n +1 +2607\\.6[0-9]* +3055\\.8"
  ARGS gmm fit ${data}/faithful.csv --components 1:2 --restarts 2 --quiet)
cli_check(NAME gmm_fit_icl STATUS 0
  STDOUT "Chosen by ICL: K = 2, full covariance"
  ARGS gmm fit ${data}/faithful.csv -k 1,2 -c full,tied --criterion icl --quiet)
cli_check(NAME gmm_help STATUS 0 STDOUT "--components" ARGS gmm fit --help)

# Bad input: one line on stderr, exit status 2.
cli_check(NAME gmm_fit_missing_file STATUS 2 STDERR "^latent: error: read_csv: cannot open 'no_such_file.csv'"
  ARGS gmm fit no_such_file.csv)
cli_check(NAME gmm_fit_bad_range STATUS 2 STDERR "^latent: error: --components: the range '5:2' is empty"
  ARGS gmm fit ${data}/faithful.csv --components 5:2)
cli_check(NAME gmm_fit_bad_count STATUS 2 STDERR "^latent: error: --components: '0' is not a positive whole number"
  ARGS gmm fit ${data}/faithful.csv --components 0:3)
cli_check(NAME gmm_fit_bad_covariance STATUS 2 STDERR "^latent: error: --covariance: 'round' is not one of"
  ARGS gmm fit ${data}/faithful.csv --covariance full,round)
cli_check(NAME gmm_fit_bad_option STATUS 109 STDERR "^latent: error: The following argument was not expected: --colour"
  ARGS gmm fit ${data}/faithful.csv --colour)
cli_check(NAME no_subcommand STATUS 106 STDERR "^latent: error: A subcommand is required" ARGS)

# Save, load, predict. With one component every record is component 1 with probability 1, and
# its log-density is that of the Gaussian with the sample mean and covariance: for the first
# record (3.6, 79), -4.4321917 (numpy, independently; reg_covar 1e-6 moves the 8th digit).
if(nlohmann_json_FOUND)
  cli_check(NAME gmm_fit_save STATUS 0 STDOUT "Saved the chosen model to gmm_k1\\.json" FIXTURES_SETUP cli_gmm_k1
    ARGS gmm fit ${data}/faithful.csv -k 1 -c full --out gmm_k1.json --quiet)
  cli_check(NAME gmm_predict STATUS 0 FIXTURES_REQUIRED cli_gmm_k1
    STDOUT "^component,p1,log_density\n1,1,-4\\.432191[67]"
    ARGS gmm predict gmm_k1.json ${data}/faithful.csv)
  cli_check(NAME gmm_predict_wrong_width STATUS 2 FIXTURES_REQUIRED cli_gmm_k1
    STDERR "^latent: error: [^\n]*has 1 columns, the model in gmm_k1\\.json has 2 variables"
    ARGS gmm predict gmm_k1.json ${CMAKE_CURRENT_SOURCE_DIR}/test_data/one_column.csv)
  cli_check(NAME gmm_predict_not_a_model STATUS 2 STDERR "^latent: error: "
    ARGS gmm predict ${data}/faithful.csv ${data}/faithful.csv)
endif()

# Factor analysis against R 4.2's factanal, run to the end of its optimizer
# (control = list(opt = list(factr = 1, pgtol = 0))):
#   factanal(attitude, 2, rotation = "varimax"): chi square 5.474201 on 8 df, p = 0.705897;
#     uniqueness of 'advance' 0.036616, loadings of 'rating' 0.881980 0.111282
#   factanal(covmat = ability.cov, factors = 2, rotation = "promax"): chi square 6.106616 on 4
#     df, p = 0.191326; factor correlation 0.556923
# (test_data/attitude.csv and ability_cov.csv were written from R's data sets by write.csv.)
set(tdata ${CMAKE_CURRENT_SOURCE_DIR}/test_data)
cli_check(NAME fa_fit_attitude STATUS 0
  STDOUT "advance +0\\.037\n.*rating +0\\.882 +0\\.111\n.*The chi square statistic is 5\\.47 on 8 degrees of freedom\\.\nThe p-value is 0\\.706"
  ARGS fa fit ${tdata}/attitude.csv --factors 2 --rotation varimax --quiet)
cli_check(NAME fa_fit_ability_covmat STATUS 0
  STDOUT "Factor Correlations:\nFactor1 +1\\.000 +0\\.557\n.*The chi square statistic is 6\\.11 on 4 degrees of freedom\\.\nThe p-value is 0\\.191"
  ARGS fa fit ${tdata}/ability_cov.csv --n-obs 112 --factors 2 --rotation promax --quiet)
cli_check(NAME fa_help STATUS 0 STDOUT "--n-obs" ARGS fa fit --help)
cli_check(NAME fa_fit_too_many_factors STATUS 2 STDERR "^latent: error: --factors: 4 factors are too many for 6 variables"
  ARGS fa fit ${tdata}/ability_cov.csv --n-obs 112 --factors 4)
cli_check(NAME fa_fit_not_square STATUS 2 STDERR "^latent: error: [^\n]*with --n-obs the file must hold a square matrix"
  ARGS fa fit ${tdata}/attitude.csv --n-obs 30 --factors 2)
cli_check(NAME fa_fit_bad_rotation STATUS 2 STDERR "^latent: error: --rotation: 'quartimax' is not one of"
  ARGS fa fit ${tdata}/attitude.csv --rotation quartimax)

# Random effects against R's nlme (ML): 20 groups of 4 replicates simulated in R (set.seed(14),
# z ~ N(10, 2^2), e ~ N(0, 1.5^2), rounded to 0.01), then
#   lme(v ~ 1, random = ~ 1 | g, method = "ML"): tau2 3.032945, theta 1.536425, mu 11.211125,
#   SE(mu) 0.413343, log-likelihood -152.549562 (its optimizer's precision: about 1e-5).
cli_check(NAME random_effects_fit STATUS 0
  STDOUT "log-likelihood -152\\.549[56].*theta +1\\.5364[0-9]* +[0-9.]+ .*mu +11\\.2111[0-9]* +0\\.41334[0-9]* .*tau2 +3\\.0329[0-9]* "
  ARGS random-effects fit ${tdata}/groups.csv)
cli_check(NAME random_effects_one_column STATUS 2 STDERR "^latent: error: [^\n]*needs at least 2 columns"
  ARGS random-effects fit ${CMAKE_CURRENT_SOURCE_DIR}/test_data/one_column.csv)
cli_check(NAME random_effects_help STATUS 0 STDOUT "one group per line" ARGS random-effects fit --help)

# Discrete Bayesian network season -> rain -> wet on 13 records with 4 of 39 values missing
# (test_data/weather.csv). Every missing value is barren (no observed variable below it in its
# record), so the observed-data likelihood factorizes and its maximizer is the empirical
# conditional frequency over the records where the family is observed (computed by hand):
# P(summer) = 7/13 = 0.538462; P(rain = yes | summer) = 2/6, P(yes | winter) = 4/6;
# P(wet | rain = no) = 1/5, P(wet | yes) = 4/5. Log-likelihood 7 log(7/13) + 6 log(6/13)
# + 8 log(2/3) + 4 log(1/3) + 8 log(4/5) + 2 log(1/5) = -21.614608, 5 free parameters,
# BIC = 43.229216 + 5 log 13 = 56.053963. Expected row counts: rain given summer 7 (one record
# has rain missing), wet given rain = no 5 + 1 + 2/3 = 6.6667.
cli_check(NAME bayesnet_fit STATUS 0
  STDOUT "13 records of 3 variables, 4 of 39 values missing.*converged.*Log-likelihood \\(observed data\\) -21\\.6146[01][0-9]*, 5 free parameters, BIC 56\\.05(39|40).*P\\(season\\)\n +summer +winter +n\n +0\\.538462 +0\\.461538 +13\\.0000\n.*P\\(rain \\| season\\)\nseason +no +yes +n\nsummer +0\\.66666[67] +0\\.33333[34] +7\\.0000\nwinter +0\\.33333[34] +0\\.66666[67] +6\\.0000\n.*P\\(wet \\| rain\\)\nrain +dry +wet +n\nno +0\\.(800000|799999) +0\\.(200000|200001) +6\\.6667\nyes +0\\.(200000|199999) +0\\.(800000|800001) +6\\.3333"
  ARGS bayesnet fit --graph ${tdata}/weather_graph.txt ${tdata}/weather.csv --quiet)
cli_check(NAME bayesnet_help STATUS 0 STDOUT "child: parent1 parent2" ARGS bayesnet fit --help)
cli_check(NAME bayesnet_cycle STATUS 2
  STDERR "^latent: error: [^\n]*cycle_graph\\.txt: [^\n]*is on a cycle"
  ARGS bayesnet fit --graph ${tdata}/cycle_graph.txt ${tdata}/weather.csv)
cli_check(NAME bayesnet_unknown_column STATUS 2
  STDERR "^latent: error: [^\n]*unknown_graph\\.txt: line 2: parent 'sprinkler' is not a column of the data file"
  ARGS bayesnet fit --graph ${tdata}/unknown_graph.txt ${tdata}/weather.csv)
cli_check(NAME bayesnet_unknown_state STATUS 2
  STDERR "^latent: error: [^\n]*line 2, column 3 \\('wet'\\): 'wet' is not one of the states given"
  ARGS bayesnet fit --graph ${tdata}/weather_graph.txt ${tdata}/weather.csv --states wet=dry,damp)
if(nlohmann_json_FOUND)
  cli_check(NAME bayesnet_fit_save STATUS 0 STDOUT "Saved the fitted network to bn\\.json"
    ARGS bayesnet fit --graph ${tdata}/weather_graph.txt ${tdata}/weather.csv --out bn.json --quiet)
endif()
