module weft/bench/tlsecho

go 1.19
