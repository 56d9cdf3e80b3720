//! Offline enrichment: each event's coordinates become a [`Place`] (nearest city, country).
//!
//! Both data sets are compiled into the binary, so no web service is ever called:
//! the nearest city comes from GeoNames' cities list (crate `reverse_geocoder`, CC BY 4.0
//! data), the country from OpenStreetMap borders (crate `country-boundaries`, ODbL data).
//! A point-in-border answer beats the nearest city's country, which can lie across a border;
//! out at sea, the nearest city's country is used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use country_boundaries::{BOUNDARIES_ODBL_360X180, CountryBoundaries, LatLon};
use reverse_geocoder::{Record, ReverseGeocoder};
use traffic::countries::country_name;
use traffic::{Event, Place};

/// Most remembered coordinate pairs; real feeds repeat a few thousand city centroids, so
/// this is plenty, and the cache is simply cleared when it fills.
const CACHE_CAPACITY: usize = 100_000;

/// Resolves coordinates to places. Build once (it parses ~145,000 cities) and share.
pub struct Geocoder {
    cities: ReverseGeocoder,
    borders: CountryBoundaries,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    /// Places by (city record address, country code): one `Arc` per place, so aggregates
    /// and every hit share it.
    places: HashMap<(usize, [u8; 2]), Arc<Place>>,
    /// Recently resolved coordinates (as bit patterns) to their place.
    coordinates: HashMap<(u64, u64), Arc<Place>>,
}

impl Geocoder {
    /// Loads the bundled data sets.
    ///
    /// # Errors
    /// Only if the bundled borders file is corrupt, which would be a build defect.
    pub fn new() -> Result<Self, country_boundaries::ReadError> {
        Ok(Self {
            cities: ReverseGeocoder::new(),
            borders: CountryBoundaries::from_reader(BOUNDARIES_ODBL_360X180)?,
            known: Mutex::new(Known::default()),
        })
    }

    /// One process-wide instance, loaded on first use (tests and the server share it).
    ///
    /// # Panics
    /// If the bundled data is corrupt (a build defect, caught by every test).
    pub fn shared() -> Arc<Geocoder> {
        static SHARED: OnceLock<Arc<Geocoder>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                #[allow(clippy::expect_used)]
                Arc::new(Geocoder::new().expect("bundled country borders are valid"))
            })
            .clone()
    }

    /// The place for a (validated) latitude and longitude.
    pub fn locate(&self, latitude: f64, longitude: f64) -> Arc<Place> {
        let coordinates = (latitude.to_bits(), longitude.to_bits());
        if let Some(place) = self.lock().coordinates.get(&coordinates) {
            return Arc::clone(place);
        }
        let city = self.cities.search((latitude, longitude)).record;
        let country = self.country_at(latitude, longitude).unwrap_or(&city.cc);
        let mut known = self.lock();
        let next_key = known.places.len() as u64;
        let place = Arc::clone(
            known
                .places
                .entry((std::ptr::from_ref(city).addr(), code_bytes(country)))
                .or_insert_with(|| Arc::new(place_of(next_key, city, country))),
        );
        if known.coordinates.len() >= CACHE_CAPACITY {
            known.coordinates.clear();
        }
        known.coordinates.insert(coordinates, Arc::clone(&place));
        place
    }

    /// The places of many events, taking the cache's lock once for all of them (new
    /// coordinates are then resolved one by one).
    pub fn locate_all(&self, events: &[Event]) -> Vec<Arc<Place>> {
        let cached: Vec<Option<Arc<Place>>> = {
            let known = self.lock();
            events
                .iter()
                .map(|e| {
                    known
                        .coordinates
                        .get(&(e.latitude.to_bits(), e.longitude.to_bits()))
                        .cloned()
                })
                .collect()
        };
        events
            .iter()
            .zip(cached)
            .map(|(e, place)| place.unwrap_or_else(|| self.locate(e.latitude, e.longitude)))
            .collect()
    }

    /// The country whose borders contain the point, if any.
    fn country_at(&self, latitude: f64, longitude: f64) -> Option<&str> {
        let position = LatLon::new(latitude, longitude).ok()?;
        // Ids come smallest region first ("US-TX", "US"); the country is the one without a
        // subdivision suffix.
        self.borders
            .ids(position)
            .into_iter()
            .find(|id| id.len() == 2)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // A panic while holding this lock cannot leave the maps inconsistent (every update
        // is a single insert or clear), so a poisoned lock is still good to use.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn code_bytes(code: &str) -> [u8; 2] {
    match code.as_bytes() {
        [a, b] => [*a, *b],
        _ => [0, 0],
    }
}

fn place_of(key: u64, city: &Record, country_code: &str) -> Place {
    Place {
        key,
        city: city.name.clone(),
        region: city.admin1.clone(),
        country_code: country_code.to_owned(),
        country: country_name(country_code).unwrap_or_default().to_owned(),
        latitude: city.lat,
        longitude: city.lon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_coordinates_resolve_to_their_city_and_country() {
        let geo = Geocoder::shared();
        let paris = geo.locate(48.8566, 2.3522);
        assert_eq!(paris.country_code, "FR");
        assert_eq!(paris.country, "France");
        assert_eq!(paris.city, "Paris");
        let bakersfield = geo.locate(35.3696, -119.0105); // first row of the course file
        assert_eq!(bakersfield.city, "Bakersfield");
        assert_eq!(bakersfield.country_code, "US");
        assert_eq!(bakersfield.region, "California");
    }

    #[test]
    fn the_same_place_is_one_shared_value_with_one_key() {
        let geo = Geocoder::shared();
        let a = geo.locate(52.52, 13.405);
        let b = geo.locate(52.5201, 13.4049);
        assert!(Arc::ptr_eq(&a, &b));
        assert_ne!(a.key, geo.locate(-33.8688, 151.2093).key);
    }

    #[test]
    fn locating_many_at_once_gives_each_its_own_place() {
        let geo = Geocoder::shared();
        let event = |latitude, longitude| Event {
            ip: std::net::IpAddr::from([192, 0, 2, 1]),
            latitude,
            longitude,
            timestamp: 1_736_919_120.0,
            suspicious: false,
        };
        let events = [
            event(48.8566, 2.3522),
            event(35.6762, 139.6503),
            event(48.8566, 2.3522),
        ];
        let places = geo.locate_all(&events);
        let cities: Vec<&str> = places.iter().map(|p| p.city.as_str()).collect();
        assert_eq!(cities, ["Paris", "Tokyo", "Paris"]);
        assert!(Arc::ptr_eq(&places[0], &places[2]));
    }

    #[test]
    fn open_sea_still_gets_the_nearest_city_and_its_country() {
        let geo = Geocoder::shared();
        let place = geo.locate(0.0, -30.0); // mid-Atlantic
        assert!(!place.city.is_empty());
        assert_eq!(place.country_code.len(), 2);
    }
}
