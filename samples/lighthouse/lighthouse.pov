// lew sample scene: a striped lighthouse on a rock, at dusk, above a calm sea.
#version 3.7;
global_settings { assumed_gamma 1.0 }

camera { location <-7, 2.5, -15> look_at <-0.5, 3.0, 0> angle 40 }
light_source { <-30, 25, -20> color rgb <1.0, 0.8, 0.6> }
light_source { <10, 8, -12> color rgb 0.25 shadowless }
sky_sphere {
  pigment { gradient y color_map { [0.0 color rgb <1.0, 0.55, 0.3>] [0.25 color rgb <0.55, 0.35, 0.6>] [1.0 color rgb <0.08, 0.1, 0.3>] } }
}

// The sea: a gently rippled, reflective plane.
plane { y, 0
  pigment { color rgb <0.05, 0.15, 0.3> }
  normal { waves 0.08 frequency 0.6 scale <3, 1, 1.2> turbulence 0.4 }
  finish { reflection 0.45 specular 0.6 roughness 0.01 }
}

// The rock it stands on.
blob {
  threshold 0.6
  sphere { <0, 0, 0>, 2.4, 1 }
  sphere { <1.1, -0.2, 0.6>, 1.6, 1 }
  sphere { <-1.0, -0.3, -0.5>, 1.5, 1 }
  pigment { granite color_map { [0 color rgb 0.25] [1 color rgb 0.45] } scale 0.8 }
  finish { diffuse 0.7 }
}

// The tower: red and white bands, a gallery, a glowing lamp and a roof.
#declare TowerStripes = pigment { gradient y color_map { [0.5 color rgb <0.85, 0.1, 0.1>] [0.5 color rgb 0.95] } scale 1.2 }
cone { <0, 0.8, 0>, 0.9, <0, 5.2, 0>, 0.6 pigment { TowerStripes } finish { specular 0.3 } }
cylinder { <0, 5.2, 0>, <0, 5.35, 0>, 0.85 pigment { color rgb 0.15 } }
cylinder { <0, 5.35, 0>, <0, 6.1, 0>, 0.45 pigment { color rgbf <1, 0.95, 0.6, 0.6> } finish { ambient 0.9 emission 0.8 } }
light_source { <0, 5.7, 0> color rgb <1.0, 0.9, 0.6> fade_distance 4 fade_power 2 }
cone { <0, 6.1, 0>, 0.6, <0, 6.7, 0>, 0 pigment { color rgb <0.6, 0.08, 0.08> } }

// A beam of light across the dusk.
cone { <0, 5.7, 0>, 0.3, <-14, 4.6, 10>, 1.8
  open
  pigment { color rgbt <1, 0.95, 0.7, 0.85> } finish { ambient 0.6 emission 0.4 diffuse 0 }
  no_shadow
}
