window.labServed = false;  // lab serve answers this file with true: a run's page then polls its rows
