"""Which revision of the decisions a pathway decides by."""

# The decisions' revision within a guideline version. A running pathway keeps the revision it started
# its run with (the workflow guards the change with a patch), so what it decided replays as it was.
#   1: as first released.
#   2: an indeterminate MRI after an osteoporotic one holds PT and referrals again; the review's pain
#      window follows a pause that held it, and a review a pause kept past its limit refers no one; a
#      flare reported on a scheduled screening's day is that day's one screening.
#   3: evidence that arrives after the day it was observed: an action is dated when it is taken (never
#      before), a severe report in the nerve-block window that arrives after the window closed makes no
#      offer, and a subsided report older than one that is not refers no one to PT; a radiograph result
#      is noted as read; a decline after the augmentation referral is refused; a flare on the day of a
#      screening order still waiting for its result orders no second one.
#   4: a step scheduled for an instant (a radiograph, the review, a screening, the calcitonin stop, the opioid
#      review, completion) is due once that instant has passed, so every event observed at it comes first.
#   5: a pause that ends at a scheduled radiograph's instant orders every radiograph then due in one order;
#      a scheduled screening within the skip window after any other screening is skipped (both fall due
#      together after a long pause); the days a pause held the follow-up checks do not count in a gap in
#      pain reports, and a resume no longer starts a new gap; a criterion found after the review refers
#      only until the review's hold limit (a note says what it waits for, and when it lapsed).
#   6: a withdrawal under the safety rules stops nothing: a calcitonin course still running is handed over
#      with the open orders, its hard-stop day named (only the pathologic exit stops calcitonin), the opioid
#      course with its review and stop days; a result answers the newest open order placed by its day (a
#      film never taken is the one escalated, not every later one); a flare while a screening ordered in
#      the skip window still waits for its film orders no second one; once a referral was declined,
#      criteria found after the review say nothing more; an MRI of a new fracture level in another
#      region does not clear the enrolled fracture; with a red flag at enrollment, the MRI of a new fracture
#      level is urgent.
#   7: a radiograph observed at the instant an order it answers is placed (a film of day 14, the week-2
#      radiograph ordered a second later, when its alarm rings), or since the day a scheduled one was due
#      while a pause held it, which no order waited for as it arrived, is that order's result: the order
#      is fulfilled, not left open to escalate; a film that would answer an older order is kept instead for
#      a scheduled one due by then and not ordered yet; a second film of one instant is read in a note of
#      its own; a report of no pulmonary dysfunction after a referral that named it is noted for the care
#      team.
#   8: a review held for its evidence, then paused, keeps its evidence window when the pathway resumes: a
#      pain report from the window's first day on counts (one sent during the pause too), as for a held
#      review without a pause — before, the window moved to the last days before the resume, which the
#      care team's task had not asked for, and the review could lapse on evidence that had come; the
#      procedure an augmentation referral suggests grades the greatest height loss measured, not the
#      latest film's (a reading a point lower no longer turns it to vertebroplasty); a flare exactly the
#      skip window's length after a screening still waiting for its film is covered by it, as the
#      scheduled screening's skip counts it, and a scheduled screening ordered on a resume exactly that
#      long after another is skipped (the workflow decides an event an instant after it was observed);
#      persistent pain found after the review refers only while it persists: a report below the threshold
#      ends the run (a referral waiting for its MRI is not made on pain that has since eased; a note says
#      the held criterion no longer holds, and the hold ends).
#   9: a pain flare orders its screening at once also while an earlier screening still waits for its film
#      (the contract's "at once on a pain flare"; section 6.12 skips only a scheduled screening after a flare
#      one): only a screening ordered on the same pathway day covers it, as before revision 6, or one ordered
#      since the flare was observed (a flare reported late); a scheduled screening is skipped after the other
#      scheduled one only when both fall due together (within a day), not within the skip window (a day-182
#      screening a pause held until day 320 no longer takes the place of the 12-month one); a pain report
#      observed before enrollment is refused (the enrollment's score is the one at day 0), and so is a result
#      observed before the fracture (it answers none of the pathway's orders); the workflow refuses a task
#      refusal that names no order of the pathway as it went out (its kind is the order's own); a review held
#      for its evidence is decided when the evidence arrives, also during a pause (safety rule 1: "as soon as
#      the missing evidence arrives, until day 182"; before, the pause held it, and a resume after day 182 let
#      it lapse with the evidence on file); a withdrawal hands over no order whose task its performer refused.
REVISION = 9
