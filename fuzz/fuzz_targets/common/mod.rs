//! Checks shared by the fuzz targets.

use traffic::Event;

/// What every accepted event must be, whichever body it came in: coordinates both or
/// neither and in range, the path within its limit, a finite time, an HTTP status.
pub fn assert_in_range(e: &Event) {
    assert_eq!(e.latitude.is_some(), e.longitude.is_some(), "{e:?}");
    if let Some((lat, lon)) = e.coordinates() {
        assert!((-90.0..=90.0).contains(&lat), "{e:?}");
        assert!((-180.0..=180.0).contains(&lon), "{e:?}");
    }
    assert!(
        e.path
            .as_ref()
            .is_none_or(|p| p.len() <= traffic::event::MAX_PATH_BYTES),
        "{e:?}"
    );
    assert!(e.timestamp.is_finite(), "{e:?}");
    assert!(e.status.is_none_or(|s| (100..=599).contains(&s)), "{e:?}");
}
